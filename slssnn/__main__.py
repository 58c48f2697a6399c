import sys

from slssnn.cli import main

sys.exit(main())
