# A client that sends what no scenario expects: binary garbage, then far more than asked,
# then reads whatever comes back until the server closes.
# python3 noisy_client.py HOST PORT
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect((host, port))
try:
    s.sendall(bytes(range(256)))
    s.sendall(b'x' * 100_000)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
except OSError as error:
    # The server may close with bytes unread, which resets the connection: that is the
    # kernel's answer, not a failure of this client.
    print('ended with', error)
s.close()
