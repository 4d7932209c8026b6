"""The audit record: its hash chain, the auditor pages, charts and exports."""
