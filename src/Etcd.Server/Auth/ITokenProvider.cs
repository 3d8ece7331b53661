namespace Etcd.Server.Auth;

/// <summary>Who a request acts as: the user name and the auth revision its credentials were checked at (etcd's <c>auth.AuthInfo</c>).</summary>
/// <param name="Username">The user; empty for none.</param>
/// <param name="Revision">The auth store revision; 0 means "no user given".</param>
public readonly record struct AuthInfo(string Username, ulong Revision);

/// <summary>
/// Issues and reads auth tokens (etcd's <c>auth.TokenProvider</c>). Implementations are thread-safe: tokens are
/// assigned on the apply thread and read by every request thread.
/// </summary>
public interface ITokenProvider : IDisposable
{
    /// <summary>Auth was enabled (or found enabled at start): start issuing tokens.</summary>
    void Enable();

    /// <summary>Auth was disabled: every token issued so far becomes invalid.</summary>
    void Disable();

    /// <summary>
    /// The user and revision a token stands for, or null when the token is not valid (unknown, expired, malformed).
    /// <paramref name="currentRevision"/> is the store's revision now (simple tokens carry none of their own).
    /// Waits, for a simple token, until this member has applied the entry that issued it.
    /// </summary>
    ValueTask<AuthInfo?> InfoAsync(string token, ulong currentRevision, CancellationToken cancellationToken);

    /// <summary>
    /// Issues a token for <paramref name="username"/> at <paramref name="revision"/> on the apply thread;
    /// <paramref name="simpleTokenPrefix"/> and <paramref name="index"/> (the raft index of the Authenticate entry)
    /// make a simple token the same on every member.
    /// </summary>
    string Assign(string username, ulong revision, string simpleTokenPrefix, ulong index);

    /// <summary>A user was deleted or its password changed: its tokens stop working (simple tokens only).</summary>
    void InvalidateUser(string username);

    /// <summary>The random part of a new simple token, chosen before proposing Authenticate; empty for other kinds.</summary>
    string GenTokenPrefix();
}
