"""`python -m edgeward.store revision|sql`: the migration tools for
developers and DBAs (see `migrate.main`)."""

import sys

from edgeward.store.migrate import main

sys.exit(main())
