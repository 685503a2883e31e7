"""``python -m hack.simulator``: run the traffic simulator."""

from hack.simulator.main import main

raise SystemExit(main())
