"""Analytics: reports, live dashboard feeds, exports."""
