from dsr_mailbot.cli import main

main()
