using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Etcd.Server.Auth;

/// <summary>
/// etcd's simple tokens (<c>auth/simple_token.go</c>): <c>&lt;16 random letters&gt;.&lt;raft index&gt;</c>, kept in
/// memory only (not valid across a restart), each expiring <see cref="Ttl"/> after its last use
/// (<c>--auth-token-ttl</c>, default 300 s), checked once a second. A token names the raft index of the
/// Authenticate entry that issued it, so every member issues the same token; a member asked about a token from an
/// entry it has not applied yet waits until it has. Thread-safe.
/// </summary>
public sealed class SimpleTokenProvider : ITokenProvider
{
    /// <summary>Length of the random prefix (etcd's <c>defaultSimpleTokenLength</c>).</summary>
    public const int PrefixLength = 16;

    private const string Letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

    private readonly object _lock = new();
    private readonly Dictionary<string, (string User, DateTimeOffset Expires)> _tokens = new(StringComparer.Ordinal);
    private readonly Func<ulong, CancellationToken, Task> _waitApplied;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private ITimer? _keeper;

    /// <summary>Creates the provider.</summary>
    /// <param name="ttl">Idle lifetime of a token; zero or less = etcd's 300 s.</param>
    /// <param name="waitApplied">Completes once this member has applied the given raft index.</param>
    /// <param name="time">The clock.</param>
    /// <param name="log">Where token deletions are logged.</param>
    public SimpleTokenProvider(TimeSpan ttl, Func<ulong, CancellationToken, Task> waitApplied, TimeProvider time, ILogger log)
    {
        Ttl = ttl > TimeSpan.Zero ? ttl : TimeSpan.FromSeconds(300);
        _waitApplied = waitApplied;
        _time = time;
        _log = log;
    }

    /// <summary>Idle lifetime of a token.</summary>
    public TimeSpan Ttl { get; }

    /// <inheritdoc/>
    public void Enable()
    {
        lock (_lock)
        {
            _keeper ??= _time.CreateTimer(_ => DropExpired(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        }
    }

    /// <inheritdoc/>
    public void Disable()
    {
        lock (_lock)
        {
            _keeper?.Dispose();
            _keeper = null;
            _tokens.Clear();
        }
    }

    /// <inheritdoc/>
    public async ValueTask<AuthInfo?> InfoAsync(string token, ulong currentRevision, CancellationToken cancellationToken)
    {
        var parts = token.Split('.');
        if (parts.Length != 2 || !ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            return null;
        }

        try
        {
            await _waitApplied(index, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return null;
        }

        lock (_lock)
        {
            if (_keeper is null || !_tokens.TryGetValue(token, out var entry))
            {
                return null;
            }

            _tokens[token] = (entry.User, _time.GetUtcNow() + Ttl);
            return new AuthInfo(entry.User, currentRevision);
        }
    }

    /// <inheritdoc/>
    public string Assign(string username, ulong revision, string simpleTokenPrefix, ulong index)
    {
        var token = string.Create(CultureInfo.InvariantCulture, $"{simpleTokenPrefix}.{index}");
        lock (_lock)
        {
            if (_keeper is not null)
            {
                _tokens[token] = (username, _time.GetUtcNow() + Ttl);
            }
        }

        return token;
    }

    /// <inheritdoc/>
    public void InvalidateUser(string username)
    {
        lock (_lock)
        {
            foreach (var (token, entry) in _tokens.ToList())
            {
                if (entry.User == username)
                {
                    _tokens.Remove(token);
                }
            }
        }
    }

    /// <inheritdoc/>
    public string GenTokenPrefix()
    {
        Span<char> prefix = stackalloc char[PrefixLength];
        for (var i = 0; i < prefix.Length; i++)
        {
            prefix[i] = Letters[RandomNumberGenerator.GetInt32(Letters.Length)];
        }

        return new string(prefix);
    }

    /// <summary>Number of live tokens (tests).</summary>
    internal int Count
    {
        get
        {
            lock (_lock)
            {
                return _tokens.Count;
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose() => Disable();

    private void DropExpired()
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            foreach (var (token, entry) in _tokens.ToList())
            {
                if (now > entry.Expires)
                {
                    _tokens.Remove(token);
                    _log.LogInformation("deleted a simple token {user-name} {token}", entry.User, token);
                }
            }
        }
    }
}
