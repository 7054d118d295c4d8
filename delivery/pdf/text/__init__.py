"""Text for the typesetter: font fallback chains (fontconfig) and shaped runs (HarfBuzz, FriBidi)."""
