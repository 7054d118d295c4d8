"""Campaigns: schedules/*.toml → Campaign, its send window and its milestones (pure)."""
