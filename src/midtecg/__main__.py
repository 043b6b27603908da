import sys

from midtecg.cli import main

sys.exit(main())
