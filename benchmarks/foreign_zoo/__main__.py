from benchmarks.foreign_zoo import main

raise SystemExit(main())
