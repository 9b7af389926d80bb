from MSG.datasets.glas import GlaSDataset, GlaSProposalDataset, LoadBinaryAnnotations

__all__ = ["GlaSDataset", "GlaSProposalDataset", "LoadBinaryAnnotations"]
