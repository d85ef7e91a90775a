"""Site capture (issue 24): frames a device sends on request, stored under the snapshot storage."""
