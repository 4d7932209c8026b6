"""The citizen's side: one sub-package per feature (sign_in, sign_up, email_codes,
second_factor, passkeys, recovery, manage, your_account), each with the same roles: pages.py
(views), logic.py (no request handling), forms.py. What the features share sits here at the
top (see ARCHITECTURE.md, "What lives where")."""
