"""Bundle: unsigned PDFs → signed PDFs, manifest.json and its signature; and back: verify."""
