"""Loopback servers for bench.py's mixed TCP/TLS/DNS case: a TCP port and a TLS port on each of N loopback
addresses (127.0.1.1, 127.0.1.2, ...; each socket bound to its own 127.x address, so nothing listens beyond
loopback), answering with a banner and a handshake. Prints READY when listening; stops on SIGTERM."""
import asyncio, resource, signal, ssl, sys


async def main(count, tcp_port, tls_port, cert, key):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def banner(reader, writer):
        writer.write(b"220 urlpoll bench\r\n")
        try:
            await writer.drain()
            writer.close()
        except OSError:
            pass

    async def silent(reader, writer):
        try:
            await reader.read(1)
        except (OSError, ssl.SSLError):
            pass
        writer.close()

    servers = []
    for i in range(count):
        host = f"127.0.{1 + i // 250}.{1 + i % 250}"
        servers.append(await asyncio.start_server(banner, host, tcp_port, backlog=64))
        servers.append(await asyncio.start_server(silent, host, tls_port, ssl=context, backlog=64))
    print("READY", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]))
