"""The WSGI entry point for a production server:
``gunicorn -c idp/operations/gunicorn_conf.py idp.wsgi:app``.

Settings come from IDP_* environment variables (and IDP_CONFIG), as for every other command.
The schema is not touched here: run ``idp prepare`` once per deployment, before the workers
start, so several processes never race to migrate.
"""

from idp import create_app

app = create_app()
