"""absl trainers: flags -> config -> strategy -> data -> training loop -> evaluation -> SavedModel."""
