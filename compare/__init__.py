"""phasedyn.compare: theory against simulation, phases, figures, command line."""
