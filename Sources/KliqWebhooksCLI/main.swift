import Hummingbird
import AsyncHTTPClient
import ArgumentParser
print("x")
