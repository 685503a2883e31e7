"""Gates between stages: things outside the release that must say "go" first."""
