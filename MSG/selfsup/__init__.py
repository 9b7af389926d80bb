"""Self-supervised pretraining of the segmentation backbone on unlabeled images (VICRegL)."""
