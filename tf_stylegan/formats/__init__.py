"""Files of networks: the project's snapshots and the official NVlabs pickles."""
