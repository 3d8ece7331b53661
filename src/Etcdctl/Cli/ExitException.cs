namespace Etcd.Ctl.Cli;

/// <summary>
/// etcdctl's <c>ExitWithError</c> (etcdctl/ctlv3/command/error.go): ends the command with an exit code after printing
/// <c>Error: MESSAGE</c> on stderr (or nothing when <see cref="ErrorMessage"/> is null).
/// </summary>
public sealed class ExitException : Exception
{
    /// <summary>Success.</summary>
    public const int ExitSuccess = 0;

    /// <summary>A failed call or a generic error.</summary>
    public const int ExitError = 1;

    /// <summary>The client could not connect or the connection failed.</summary>
    public const int ExitBadConnection = 2;

    /// <summary>Bad input for txn and watch.</summary>
    public const int ExitInvalidInput = 3;

    /// <summary>A valid flag with an unsupported value (e.g. an output format a command cannot print).</summary>
    public const int ExitBadFeature = 4;

    /// <summary>Interrupted (e.g. a watch canceled by the server, a failed snapshot save).</summary>
    public const int ExitInterrupted = 5;

    /// <summary>An I/O error.</summary>
    public const int ExitIO = 6;

    /// <summary>Bad arguments.</summary>
    public const int ExitBadArgs = 128;

    /// <summary>Creates the exit with <paramref name="code"/>; <paramref name="message"/> null exits silently.</summary>
    public ExitException(int code, string? message)
        : base(message ?? string.Empty)
    {
        Code = code;
        ErrorMessage = message;
    }

    /// <summary>The process exit code.</summary>
    public int Code { get; }

    /// <summary>The text printed after <c>Error: </c>, or null to print nothing.</summary>
    public string? ErrorMessage { get; }
}
