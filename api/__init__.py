"""hab API package (importing it changes nothing in the process: entry points call api.runtime)."""
