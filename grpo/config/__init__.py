"""Config checks that import no torch: every group validated before anything loads (validate.py), the `_target_`
signature checks (targets.py), the TRL field registry behind the `trainer` group (trainer_fields.py)."""
