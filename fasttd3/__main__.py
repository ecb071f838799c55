import sys

from fasttd3.cli import main

sys.exit(main())
