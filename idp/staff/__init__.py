"""Staff: platform administrators, department administrators and auditors. Their accounts
(accounts.py), sessions and cookie (sessions.py), sign-in pages (pages.py), the guards on
staff pages (guards.py), and the auditor's pages (audit_pages.py)."""
