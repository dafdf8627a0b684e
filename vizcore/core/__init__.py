"""What every method stands on: progress and cancellation, hooks, background jobs, the workspace."""
