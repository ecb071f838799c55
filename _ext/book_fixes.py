"""Small fixes to Jupyter Book 1's HTML, loaded through `sphinx.local_extensions` in _config.yml."""


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    """sphinx-thebe's configuration script (`const THEBE_JS_URL = ...`) is registered once per read
    phase, once with filename None and once with '': the second `const` throws a SyntaxError in
    every page. Keep the first of scripts that are the same file (or inline body) and attributes."""
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (
            getattr(script, "filename", str(script)) or "",
            repr(sorted(getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", drop_duplicate_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
