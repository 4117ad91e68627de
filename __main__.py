import sys

from livepuppet.cli.main import main

sys.exit(main())
