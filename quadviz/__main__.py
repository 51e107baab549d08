import sys

from quadviz.cli import main

sys.exit(main())
