import sys

from netscope.cli import main

sys.exit(main())
