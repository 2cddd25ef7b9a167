"""The shell: CLI, settings, local broker lifecycle, topic admin, logging."""
