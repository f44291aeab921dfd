"""Meetings: scheduling, invitations, calendars, the join page and call signaling."""
