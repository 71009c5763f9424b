"""Real device-edge co-inference over TCP.

- :mod:`.frames`: the wire format (a versioned, length-checked binary frame; never pickle);
- :mod:`.catalog`: models served by name or content hash, and the graph digest;
- :mod:`.parts`: op ranges of a model, what they read and hand back, running one on a Processor;
- :mod:`.shaping`: token-bucket rate shaping to a :class:`~coinfer.hw.Link`'s bandwidth (or trace) and RTT;
- :mod:`.server`: the edge server (``coinfer edge-server``);
- :mod:`.client`: the client, and the runner that splits a frame between the device and the server.
"""
