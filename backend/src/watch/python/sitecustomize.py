# Socket Lab's announcer, loaded into a watched Python program by `socket-lab watch` (which
# puts this file's folder first on PYTHONPATH). While a socket method runs, it keeps the line
# of the program that called it, and the method's name, in a small buffer of each thread;
# the tracer reads the buffer from the program's memory whenever it stops the program at a
# system call anyway, so a call costs no extra stop. Each thread tells the tracer where its
# buffer is once, through a system call the tracer stops at: write() on descriptor -4242,
# which the kernel refuses at once (EBADF). The program sees nothing of it: its sys.path is
# given back as it was, and the sitecustomize this file hides is loaded after it.
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# The buffer: a little-endian u32 length (0 while no socket method runs), then
# "FILE\0LINE\0METHOD". Its size is the tracer's SLOT_SIZE.
_SLOT_SIZE = 1024


def _install_on(socket):
    import threading

    from array import array

    announce_fd = -4242
    socket_py = socket.__file__
    local = threading.local()
    getframe = sys._getframe
    empty = bytes(4)

    def slot():
        view = getattr(local, "slot", None)
        if view is None:
            buffer = array("B", bytes(_SLOT_SIZE))
            view = memoryview(buffer)
            local.slot = view
            local.buffer = buffer
            local.level = 0
            try:
                os.write(announce_fd, b"A%d" % buffer.buffer_info()[0])
            except OSError:
                pass
        return view

    def wrap(name, original):
        def method(*args, **kwargs):
            view = slot()
            level = local.level
            local.level = level + 1
            if level == 0:
                # The program's own line: the first frame outside socket.py (whose
                # create_connection, makefile and accept call these methods in turn).
                frame = getframe(1)
                while frame is not None and frame.f_code.co_filename == socket_py:
                    frame = frame.f_back
                if frame is not None:
                    text = ("%s\0%d\0%s" % (frame.f_code.co_filename, frame.f_lineno, name)).encode(
                        "utf-8", "surrogateescape"
                    )[: _SLOT_SIZE - 4]
                    view[4 : 4 + len(text)] = text
                    view[0:4] = len(text).to_bytes(4, "little")
            try:
                return original(*args, **kwargs)
            finally:
                local.level = level
                if level == 0:
                    view[0:4] = empty

        method.__name__ = name
        method.__qualname__ = "socket." + name
        method.__doc__ = original.__doc__
        return method

    for name in (
        "accept", "bind", "close", "connect", "connect_ex", "getpeername", "getsockname",
        "getsockopt", "listen", "recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg",
        "send", "sendall", "sendto", "sendmsg", "setblocking", "setsockopt", "settimeout",
        "shutdown",
    ):
        original = getattr(socket.socket, name, None)
        if original is not None:
            setattr(socket.socket, name, wrap(name, original))
    # Making a socket: `socket.socket(...)` runs __init__, named as the program writes it.
    socket.socket.__init__ = wrap("socket", socket.socket.__init__)
    for name in (
        "create_connection", "create_server", "socketpair", "fromfd", "gethostbyname",
        "gethostbyname_ex", "gethostbyaddr", "getaddrinfo", "getnameinfo",
    ):
        original = getattr(socket, name, None)
        if original is not None:
            setattr(socket, name, wrap(name, original))


class _PatchSocketOnImport:
    # Patches the socket module when the program first imports it, so that a program that
    # never does pays nothing for the announcer (importing socket at start-up costs about a
    # millisecond).
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "socket":
            return None
        sys.meta_path.remove(cls)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            try:
                _install_on(module)
            except Exception:  # Never stop the program: without lines it still runs.
                pass

        spec.loader.exec_module = exec_and_patch
        return spec


if "socket" in sys.modules:
    try:
        _install_on(sys.modules["socket"])
    except Exception:
        pass
else:
    sys.meta_path.insert(0, _PatchSocketOnImport)

sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != _HERE]

# The sitecustomize this file hides, if there is one, is run in its place: it becomes the
# program's `sitecustomize` module (importlib keeps whatever stands under the name when this
# file's import ends), so the program sees what it would see unwatched, errors included.
try:
    from importlib.machinery import PathFinder

    _hidden_spec = PathFinder.find_spec("sitecustomize", sys.path)
except Exception:
    _hidden_spec = None
if _hidden_spec is not None and _hidden_spec.loader is not None:
    from importlib.util import module_from_spec

    _hidden = module_from_spec(_hidden_spec)
    sys.modules["sitecustomize"] = _hidden
    _hidden_spec.loader.exec_module(_hidden)
