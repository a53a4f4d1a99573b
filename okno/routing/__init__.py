"""Routing: which operator answers a waiting dialog, and when (queues, skills, capacity,
priorities, first-response targets, overflow, business hours)."""
