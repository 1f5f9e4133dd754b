"""Files: atomic writes (:mod:`.atomic`), images in memory (:mod:`.images`) and out of core (:mod:`.lazy_images`)."""
