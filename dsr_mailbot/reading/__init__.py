"""Stage 2: reading mail: parsing, charsets, the person's own words, the subject's marker, the fields asked."""
