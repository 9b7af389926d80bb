from MSG.segmentors.mssg_encoder_decoder import MSSGEncoderDecoder

__all__ = ["MSSGEncoderDecoder"]
