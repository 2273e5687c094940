import sys

from naas_tl.cli.main import main

sys.exit(main())
