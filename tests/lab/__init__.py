"""The lab fleet: real Debian 12 hosts in network namespaces, for tests and demos (see fleet.py)."""
