"""The `sluice` command: `sluice operator` runs the operator; queue tools come later."""
