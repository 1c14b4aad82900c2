"""Applications built on the duetto engine; the engine never imports from here."""
