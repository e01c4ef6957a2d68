import sys

from workbench.sim.cli import main

raise SystemExit(main(sys.argv[1:]))
