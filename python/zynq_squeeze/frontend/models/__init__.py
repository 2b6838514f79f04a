"""Built-in reference models."""
from .digits import digits_data, digits_model
from .squeezenet import squeezenet, squeezenet_layers, squeezenet_macs

__all__ = ["squeezenet", "squeezenet_macs", "squeezenet_layers", "digits_model", "digits_data"]
