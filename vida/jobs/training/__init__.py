"""One training: a classifier or a generator planned from the catalog, fitted in a
worker, recorded by the driver; generated sets, distillation, the training's inputs."""
