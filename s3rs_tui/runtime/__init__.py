"""The shared runtime every layer stands on: settings, errors, identifier parsing, the events a run
reports, pause/stop control, retries, SSH tunnels, fail points. It imports nothing above it."""
