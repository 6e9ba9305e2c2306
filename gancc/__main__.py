from gancc.cli import main

raise SystemExit(main())
