"""Load and availability: the K6 control and k6 runners, and the availability monitor."""
