from livepuppet.cli.main import main
import sys
sys.exit(main())
