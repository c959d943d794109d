"""Generated protobuf and gRPC modules of the sparsed.v1 API
(proto/sparsed/v1/*.proto): tensor_pb2, tensors_pb2, tensors_pb2_grpc, ...

An installed package has them in this directory: setup.py runs grpc_tools
while it builds the package. In a source checkout CMake writes them to
BUILD/python/sparsed/v1 (target python_stubs), and client/python/sparsed_client.py
adds that directory to this package's __path__ before anything imports them.
"""
